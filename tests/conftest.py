import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "test")  # the GUI keeps its QSettings apart

import pytest

#: `make test` runs the Qt-free layers' fast tests once, in the virtualenv without Qt
#: (`make test-noqt`), and names their folders here so that the main run leaves them out
QT_FREE_ELSEWHERE = os.environ.get("DIFFUSION_GUI_QT_FREE_ELSEWHERE", "").split()


def pytest_collection_modifyitems(config, items):
    if not QT_FREE_ELSEWHERE:
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs = tuple(os.path.join(root, d.rstrip("/")) + os.sep for d in QT_FREE_ELSEWHERE)
    drop = [it for it in items if str(it.path).startswith(dirs) and it.get_closest_marker("slow") is None]
    if drop:
        gone = set(map(id, drop))
        config.hook.pytest_deselected(items=drop)
        items[:] = [it for it in items if id(it) not in gone]


@pytest.fixture(autouse=True)
def _torch_seed():
    """Every test starts from the same global RNG state (tests pass generators where it matters)."""
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(0)
    yield


@pytest.fixture
def no_gpu(monkeypatch):
    """This process sees neither CUDA nor MPS, whatever the machine has."""
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr("diffusion_gui.core.devices._mps_available", lambda: False)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """``checkpoints(timesteps=50, size=16, channels=1, layout="flat", seed=0, **sched)`` -> the
    folder (named ``tiny``: the model's name) of a tiny random diffusers checkpoint (tests/tiny_models.py), built once per parameter
    set for the whole test session. Read-only: copy it before damaging it."""
    from tiny_models import make_checkpoint
    root = tmp_path_factory.mktemp("checkpoints")
    made: dict = {}

    def get(*, timesteps: int = 50, size: int = 16, channels: int = 1, layout: str = "flat",
            seed: int = 0, **sched):        # sched may hold make_checkpoint's classes= / null_label=
        key = (timesteps, size, channels, layout, seed, tuple(sorted(sched.items())))
        if key not in made:
            name = f"{layout}-{size}px-{channels}ch-T{timesteps}-s{seed}-{len(made)}"
            made[key] = make_checkpoint(root / name / "tiny", size=size, channels=channels,
                                        timesteps=timesteps, layout=layout, seed=seed, **sched)
        return made[key]

    return get


@pytest.fixture(scope="session")
def tiny_model(checkpoints):
    """``tiny_model(**params)`` -> a freshly loaded :class:`LoadedModel` of
    ``checkpoints(**params)`` (a new object at every call: a test may change it)."""
    def load(**params):
        from diffusion_gui.models.loader import load_model
        return load_model(str(checkpoints(**params)))

    return load

"""Built-in models shipped under ``assets/models/<name>/`` (diffusers pipeline folders)."""
from __future__ import annotations

from pathlib import Path

from ..paths import assets_dir

DEFAULT_MODEL = "digits"


def models_dir() -> Path:
    return assets_dir() / "models"


def builtin_names() -> list[str]:
    d = models_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if (p / "model_index.json").is_file() or (p / "unet").is_dir())


def builtin_path(name: str) -> Path | None:
    """The folder of built-in model ``name``, or None if there is no such built-in model."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    p = models_dir() / name
    return p if p.is_dir() and name in builtin_names() else None


def list_models() -> list[dict]:
    """Built-in models and diffusers UNet models in the local Hugging Face cache (no network)."""
    rows = [{"name": n, "kind": "built-in", "path": str(builtin_path(n))} for n in builtin_names()]
    try:
        from huggingface_hub import scan_cache_dir
        for repo in scan_cache_dir().repos:
            if repo.repo_type == "model":
                rows.append({"name": repo.repo_id, "kind": "hf-cache", "path": str(repo.repo_path)})
    except Exception:
        pass
    return rows

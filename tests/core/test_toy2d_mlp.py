"""The 2-D lab's MLP computes its time embedding once per distinct timestep, with no change."""
import torch

from diffusion_gui.core.toy2d_mlp import EpsMLP


def test_one_embedding_per_distinct_t_equals_one_per_point():
    torch.manual_seed(0)
    net = EpsMLP(1000, 32, 2).eval()
    x = torch.randn(200, 2)
    i = torch.randint(0, 1000, (200,))
    with torch.no_grad():
        t = (i.to(x.dtype) + 1) / net.timesteps               # the per-point formulation
        ang = t[:, None] * net.freqs[None, :]
        temb = net.temb(torch.cat([ang.sin(), ang.cos()], 1))
        h = net.inp(x)
        for b in net.blocks:
            h = h + b.fc2(torch.nn.functional.silu(b.fc1(b.norm(h)) + b.time(temb)))
        torch.testing.assert_close(net(x, i), net.out(h), rtol=0, atol=1e-6)
        same = net(x, torch.full((200,), 7))                  # a sampler's batch: one t
        torch.testing.assert_close(net(x, torch.tensor(7)), same)

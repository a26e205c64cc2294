"""Spatially correlated Gaussian random fields for shadow fading and LOS state.

TR 38.901 clause 7.5 (step 4) and 7.6.3 ask for large-scale parameters and the LOS state to be
spatially correlated with an exponential autocorrelation exp(-Δd / d_corr). We realise each
field as a sum of N random sinusoids (random Fourier features):

    f(x) = sqrt(2/N) · Σ_n cos(k_n · x + φ_n),   φ_n ~ U(0, 2π),

with wave vectors k_n drawn from the 2D spectral density of exp(-r/d), whose radial CDF is
F(k) = 1 - (1 + d²k²)^(-1/2). Then E[f(x) f(x+r)] = exp(-|r|/d), the marginal tends to
N(0, 1), and a field is a closed-form function of position: no grid, O(1) memory, the same
value every time a UE comes back to a place, and it runs on CPU or GPU alike.

The exponential model is rough at small scales (its spectrum has a heavy tail), which would make
a walking UE's LOS state chatter across its threshold every few metres. Like the usual gridded
implementations (a field on a grid of spacing d/10, interpolated), we drop wavelengths shorter
than ``MIN_WAVELENGTH_FRACTION`` x d (k is drawn from F conditioned on k <= 2π/(0.2 d)): about 3%
of the spectrum; the correlation at lags of d/2 and beyond moves by under 0.02 (tests check it).
"""

from __future__ import annotations

import math

import torch

#: Shortest wavelength kept in a field, as a fraction of its correlation distance.
MIN_WAVELENGTH_FRACTION = 0.2


class SinusoidField:
    """A bank of independent unit-variance fields, one per (site, link class)."""

    def __init__(
        self,
        corr_m: torch.Tensor,
        n_terms: int,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """``corr_m``: correlation distance per field, any shape ``F``. Creates fields of shape F."""
        shape = tuple(corr_m.shape)
        k_max_d = 2.0 * math.pi / MIN_WAVELENGTH_FRACTION  # d·k_max
        f_max = 1.0 - 1.0 / math.sqrt(1.0 + k_max_d**2)
        u = f_max * torch.rand((*shape, n_terms), generator=generator, dtype=torch.float64)
        k_mag = torch.sqrt(torch.clamp((1.0 / (1.0 - u)) ** 2 - 1.0, min=0.0)) / corr_m.double().unsqueeze(-1)
        angle = 2.0 * math.pi * torch.rand((*shape, n_terms), generator=generator, dtype=torch.float64)
        phase = 2.0 * math.pi * torch.rand((*shape, n_terms), generator=generator, dtype=torch.float64)
        self.kx = (k_mag * torch.cos(angle)).to(device=device, dtype=dtype)
        self.ky = (k_mag * torch.sin(angle)).to(device=device, dtype=dtype)
        self.phase = phase.to(device=device, dtype=dtype)
        self.scale = math.sqrt(2.0 / n_terms)
        # [fields, N] views for index_select by a flat field index (advanced indexing by an
        # index tuple is several times slower on CPU)
        self._strides = [math.prod(shape[i + 1 :]) for i in range(len(shape))]
        self._flat = tuple(t.reshape(-1, n_terms) for t in (self.kx, self.ky, self.phase))

    def gradient_rms(self) -> torch.Tensor:
        """RMS directional derivative of each field, per metre, averaged over directions:
        sqrt(mean_n |k_n|^2 / 2) (the derivative of sqrt(2/N) Σ cos(k_n·x + φ_n) along a unit
        vector has variance (1/N) Σ (k_n·s)^2 over the random phases)."""
        k2 = self.kx.double() ** 2 + self.ky.double() ** 2
        return torch.sqrt(k2.mean(-1) / 2.0)

    def sample(self, x: torch.Tensor, y: torch.Tensor, index: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Field values at positions ``(x, y)`` for the fields selected by ``index``.

        ``x``, ``y`` and each index tensor broadcast together to the output shape; the index
        tensors select the field (one per field dimension).
        """
        x = x.unsqueeze(-1)
        y = y.unsqueeze(-1)
        flat = sum(i * st for i, st in zip(torch.broadcast_tensors(*index), self._strides, strict=True))
        kx, ky, phase = (t.index_select(0, flat.reshape(-1)).view(*flat.shape, -1) for t in self._flat)
        # Same arithmetic as kx·x + ky·y + φ, but in place on one [..., N] buffer: the hot
        # loop of the radio model is memory-bound, so fewer temporaries is faster.
        arg = torch.mul(kx, x)
        arg.add_(torch.mul(ky, y))
        arg.add_(phase)
        return torch.cos_(arg).sum(-1).mul_(self.scale)

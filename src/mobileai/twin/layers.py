"""Inter-frequency layer priorities and the connected-mode events that use them.

A multi-layer network (TR 38.913 6.1.2: a coverage layer plus capacity layers) gives each
carrier an absolute priority (TS 38.304 5.2.4.1, ``cellReselectionPriority`` 0..7, higher is
preferred). In connected mode operators steer with the measurement events of TS 38.331 5.5.4:

- towards a *higher*-priority carrier, event **A4** (5.5.4.5), neighbour above a threshold:
  ``Mn + Ofn + Ocn - Hys > Thresh`` (a capacity layer takes every UE it covers well enough);
- towards a *lower*-priority carrier, event **A5** (5.5.4.6), serving below threshold1 and
  neighbour above threshold2: ``Mp + Hys < Thresh1`` and ``Mn + Ofn + Ocn - Hys > Thresh2``
  (leave the capacity layer only when it fails);
- between carriers of equal priority (and within a carrier), event A3 as before.

Offsets Ofn / Ocn are 0 here (per-pair CIO applies to A3 only); trigger quantity RSRP (the
layer-3 filtered values the twin keeps per candidate). The functions are pure tensor maths over
[UEs, candidates], called by :mod:`mobileai.twin.engine`.
"""

from __future__ import annotations

import torch

from mobileai.errors import UserError
from mobileai.twin.config import LayerPriorityConfig

#: Carriers closer than this (GHz) are the same frequency layer (1 MHz).
SAME_CARRIER_GHZ = 1e-3


def cell_priorities(carrier_ghz: torch.Tensor, cfg: LayerPriorityConfig) -> torch.Tensor | None:
    """Priority [C] (int64) of each cell from its carrier; None when no priorities are set.

    Raises :class:`UserError` naming ``ran.layer_priority.priorities`` when a carrier of the
    layout has no priority."""
    if not cfg.priorities:
        return None
    freqs = torch.tensor(list(cfg.priorities), dtype=torch.float64)
    prio = torch.tensor(list(cfg.priorities.values()), dtype=torch.long)
    diff = (carrier_ghz.double().cpu()[:, None] - freqs[None, :]).abs()
    dist, which = diff.min(1)
    missing = sorted({round(float(f), 6) for f in carrier_ghz[dist > SAME_CARRIER_GHZ].tolist()})
    if missing:
        raise UserError(
            f"ran.layer_priority.priorities: no priority for carrier(s) {missing} GHz of the layout; "
            f"listed: {sorted(cfg.priorities)}"
        )
    return prio[which].to(carrier_ghz.device)


def layer_entering(
    a3_entering: torch.Tensor,
    l3: torch.Tensor,
    srv_l3: torch.Tensor,
    cand_prio: torch.Tensor,
    srv_prio: torch.Tensor,
    hys_db: torch.Tensor,
    cfg: LayerPriorityConfig,
) -> torch.Tensor:
    """Entering condition [U, K] of each UE's handover event towards each candidate: A3 (given
    as ``a3_entering``) for equal priority, A4 for a higher, A5 for a lower priority.

    ``l3`` [U, K] filtered RSRP of the candidates (dBm), ``srv_l3`` [U] the serving cell's,
    ``cand_prio`` [U, K] and ``srv_prio`` [U] the priorities, ``hys_db`` [U] the serving cell's
    hysteresis. Availability and the serving slot are masked by the caller."""
    up = cand_prio > srv_prio[:, None]
    down = cand_prio < srv_prio[:, None]
    hys = hys_db[:, None]
    a4 = l3 - hys > cfg.a4_threshold_dbm
    a5 = ((srv_l3 + hys_db) < cfg.a5_threshold1_dbm)[:, None] & (l3 - hys > cfg.a5_threshold2_dbm)
    return torch.where(up, a4, torch.where(down, a5, a3_entering))


def preferred(fire: torch.Tensor, cand_prio: torch.Tensor) -> torch.Tensor:
    """Of the candidates whose event fired [U, K], those on the highest priority among them
    (the network hands over to the preferred layer first; the caller then takes the strongest)."""
    low = torch.full_like(cand_prio, -1)
    top = torch.where(fire, cand_prio, low).amax(1, keepdim=True)
    return fire & (cand_prio == top)

"""Standardised 5QI characteristics, 3GPP TS 23.501 Table 5.7.4-1.

Resource type (GBR, Non-GBR, Delay-critical GBR), default priority level, packet delay budget,
packet error rate and, for delay-critical GBR, the default maximum data burst volume. The twin's
radio admission control (``engine``, an RRM function of TS 38.300) treats the GBR and delay-critical GBR
resource types as guaranteed flows; the per-modality QoS of ``net4ai.qos`` schedules by priority.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FiveQI:
    value: int
    resource: str  # "GBR", "Non-GBR", "Delay-critical GBR"
    priority: int
    pdb_ms: float
    per: float
    mdbv_bytes: int | None
    example: str


FIVE_QI: dict[int, FiveQI] = {
    q.value: q
    for q in (
        FiveQI(1, "GBR", 20, 100, 1e-2, None, "Conversational voice"),
        FiveQI(2, "GBR", 40, 150, 1e-3, None, "Conversational video (live streaming)"),
        FiveQI(3, "GBR", 30, 50, 1e-3, None, "Real-time gaming, V2X, process automation monitoring"),
        FiveQI(4, "GBR", 50, 300, 1e-6, None, "Non-conversational video (buffered streaming)"),
        FiveQI(65, "GBR", 7, 75, 1e-2, None, "Mission-critical push-to-talk voice"),
        FiveQI(67, "GBR", 15, 100, 1e-3, None, "Mission-critical video user plane"),
        FiveQI(71, "GBR", 56, 150, 1e-6, None, "Live uplink streaming"),
        FiveQI(72, "GBR", 56, 300, 1e-4, None, "Live uplink streaming"),
        FiveQI(5, "Non-GBR", 10, 100, 1e-6, None, "IMS signalling"),
        FiveQI(6, "Non-GBR", 60, 300, 1e-6, None, "Video (buffered streaming), TCP-based"),
        FiveQI(7, "Non-GBR", 70, 100, 1e-3, None, "Voice, video (live streaming), interactive gaming"),
        FiveQI(8, "Non-GBR", 80, 300, 1e-6, None, "Video (buffered streaming), TCP-based"),
        FiveQI(9, "Non-GBR", 90, 300, 1e-6, None, "Video (buffered streaming), TCP-based, default"),
        FiveQI(79, "Non-GBR", 65, 50, 1e-2, None, "V2X messages"),
        FiveQI(80, "Non-GBR", 68, 10, 1e-6, None, "Low-latency eMBB applications, augmented reality"),
        FiveQI(82, "Delay-critical GBR", 19, 10, 1e-4, 255, "Discrete automation"),
        FiveQI(83, "Delay-critical GBR", 22, 10, 1e-4, 1354, "Discrete automation, V2X platooning"),
        FiveQI(84, "Delay-critical GBR", 24, 30, 1e-5, 1354, "Intelligent transport systems"),
        FiveQI(85, "Delay-critical GBR", 21, 5, 1e-5, 255, "Electricity distribution, V2X remote driving"),
        FiveQI(86, "Delay-critical GBR", 18, 5, 1e-4, 1354, "V2X collision avoidance, platooning"),
        FiveQI(87, "Delay-critical GBR", 25, 5, 1e-3, 500, "Interactive service: motion tracking data"),
        FiveQI(88, "Delay-critical GBR", 25, 10, 1e-3, 1125, "Interactive service: motion tracking data"),
        FiveQI(
            89, "Delay-critical GBR", 25, 15, 1e-4, 17000, "Visual content for cloud/edge/split rendering"
        ),
        FiveQI(
            90, "Delay-critical GBR", 25, 20, 1e-4, 63000, "Visual content for cloud/edge/split rendering"
        ),
    )
}


def is_gbr(five_qi: int) -> bool:
    """Whether ``five_qi`` has a guaranteed bit rate (GBR or delay-critical GBR resource type)."""
    return FIVE_QI[five_qi].resource != "Non-GBR"

"""Network for AI: placement and split inference, per-modality QoS, QoAIS."""

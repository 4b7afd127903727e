"""Continual-learning routers: baselines of the continual family, which mixes LoRA sub-experts."""

"""GateBench: a reproducibility benchmark and leaderboard for Mixture-of-Experts gates."""

__version__ = "0.1.0"

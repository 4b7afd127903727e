"""Citations shared by several baseline modules."""

WONG_2026 = "Wong (2026), Affinity Is Not Enough: Temporal, Precision and Anticipatory Routing"
WONG_2026_URL = "https://arxiv.org/abs/2605.00604"

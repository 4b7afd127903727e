"""Citations shared by several baseline modules."""

WONG_2026 = "Wong (2026), Affinity Is Not Enough: Temporal, Precision and Anticipatory Routing"
WONG_2026_URL = "https://arxiv.org/abs/2605.00604"

# Continual learning (baselines/continual/)
# The seeds give these two papers' titles but neither authors nor links: cite the titles only.
MOSES = "Mixtures of SubExperts for Large Language Continual Learning (MoSEs, 2025)"
MOSES_URL = ""
WANG_L2P_2022 = "Wang et al. (2022), Learning to Prompt for Continual Learning (CVPR)"
WANG_L2P_2022_URL = "https://arxiv.org/abs/2112.08654"
WANG_OLORA_2023 = (
    "Wang et al. (2023), Orthogonal Subspace Learning for Language Model Continual Learning"
)
WANG_OLORA_2023_URL = "https://arxiv.org/abs/2310.14152"
DOU_2024 = (
    "Dou et al. (2024), LoRAMoE: Alleviating World Knowledge Forgetting in Large Language "
    "Models via MoE-Style Plugin"
)
DOU_2024_URL = "https://arxiv.org/abs/2312.09979"
GRIP = (
    "GRIP: Algorithm-Agnostic Machine Unlearning for Mixture-of-Experts via Geometric Router "
    "Constraints (2026)"
)
GRIP_URL = ""
SAHA_2021 = "Saha, Garg and Roy (2021), Gradient Projection Memory for Continual Learning (ICLR)"
SAHA_2021_URL = "https://arxiv.org/abs/2103.09762"
CHEN_2023 = (
    "Chen et al. (2023), Lifelong Language Pretraining with Distribution-Specialized Experts"
)
CHEN_2023_URL = "https://arxiv.org/abs/2305.12281"
KIRKPATRICK_2017 = (
    "Kirkpatrick et al. (2017), Overcoming catastrophic forgetting in neural networks (PNAS)"
)
KIRKPATRICK_2017_URL = "https://arxiv.org/abs/1612.00796"

# The router zoo (baselines/zoo/)
SHAZEER_2017 = (
    "Shazeer et al. (2017), Outrageously Large Neural Networks: The Sparsely-Gated "
    "Mixture-of-Experts Layer"
)
SHAZEER_2017_URL = "https://arxiv.org/abs/1701.06538"
FEDUS_2021 = (
    "Fedus, Zoph and Shazeer (2021), Switch Transformers: Scaling to Trillion Parameter Models "
    "with Simple and Efficient Sparsity"
)
FEDUS_2021_URL = "https://arxiv.org/abs/2101.03961"
ZOPH_2022 = "Zoph et al. (2022), ST-MoE: Designing Stable and Transferable Sparse Expert Models"
ZOPH_2022_URL = "https://arxiv.org/abs/2202.08906"
ROLLER_2021 = "Roller et al. (2021), Hash Layers For Large Sparse Models"
ROLLER_2021_URL = "https://arxiv.org/abs/2106.04426"
ZHOU_2022 = "Zhou et al. (2022), Mixture-of-Experts with Expert Choice Routing"
ZHOU_2022_URL = "https://arxiv.org/abs/2202.09368"
DYNMOLE_2025 = (
    "DynMoLE: Boosting Mixture of LoRA Experts Fine-Tuning with a Hybrid Routing Mechanism (2025)"
)
DYNMOLE_2025_URL = ""
REMIX_2025 = "ReMix: Reinforcement routing for mixtures of LoRAs in LLM finetuning (2025)"
REMIX_2025_URL = ""
ERC_2025 = "Coupling Experts and Routers in Mixture-of-Experts via an Auxiliary Loss (2025)"
ERC_2025_URL = ""

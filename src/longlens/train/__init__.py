"""`longlens train`: the recipes. `zoom/` (LOVE-R1 SFT stages 1-2 and GRPO, its rollouts and stage-1/2 rows) and
`navigate/` (LongVideo-R1 SFT and GRPO), on the shared SFT (`sft_core`) and GRPO (`grpo_core`) machinery,
configured from YAML by `config`. Rewards are `longlens.rewards`; rows come from `longlens.data`."""

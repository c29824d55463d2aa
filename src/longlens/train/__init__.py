"""Training the two agents: data construction (`clipcaps`, `teacher`, `mining`, `data`), rewards (`rewards`),
SFT (`sft`, `sft_navigate`) and GRPO (`grpo_core`, `grpo`, `grpo_navigate`), configured by `config`."""

"""`longlens data`: the training data, built from videos and teachers: clip captions (`clipcaps`), teacher CoTs
(`teacher`), hard-example mining for GRPO (`mining`), the rows both recipes read (`rows`), their post-filters
(`filters`) and LLaMA-Factory export (`export`). Long jobs resume through `decided`."""

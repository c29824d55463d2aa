"""What the SFT recipes share: loading, TRL's SFTConfig from our flat config, the trainer, the summary."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from longlens.errors import LongLensError
from longlens.train.config import trl_args

log = logging.getLogger(__name__)


def check_model_dir(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise LongLensError(f"model_path {p}: no such directory; give a local model folder")
    if not (p / "config.json").is_file():
        raise LongLensError(f"model_path {p}: not a model folder (no config.json)")
    return p


def _imports():
    from longlens._torchvision_shim import install

    install()
    import torch
    import transformers

    return torch, transformers


def _load_kwargs(cfg, torch) -> dict:
    bf16 = cfg.trl.get("bf16")
    bf16 = torch.cuda.is_available() if bf16 is None else bf16
    kwargs = {"local_files_only": True, "dtype": torch.bfloat16 if bf16 else torch.float32}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    return kwargs


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_vl_model(cfg):
    """(model, processor for encoding, a pristine processor to save) from `cfg.model_path`; the vision tower
    frozen when `cfg.freeze_vision`. The encoding processor gets the backend's widened pixel limits; the saved
    one keeps the checkpoint's settings."""
    path = check_model_dir(cfg.model_path)
    torch, transformers = _imports()
    try:
        processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
        pristine = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
        model = transformers.AutoModelForImageTextToText.from_pretrained(path, **_load_kwargs(cfg, torch))
    except (OSError, ValueError) as exc:
        raise LongLensError(f"model_path {path}: cannot load the model ({_first_line(exc)})") from exc
    if cfg.freeze_vision:
        for name, p in model.named_parameters():
            if "visual" in name:
                p.requires_grad_(False)
    return model, processor, pristine


def load_text_model(cfg):
    """(causal LM, tokenizer) from `cfg.model_path`; `cfg.chat_template` (a file) replaces the tokenizer's."""
    path = check_model_dir(cfg.model_path)
    torch, transformers = _imports()
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(path, **_load_kwargs(cfg, torch))
    except (OSError, ValueError) as exc:
        raise LongLensError(f"model_path {path}: cannot load the model ({_first_line(exc)})") from exc
    if cfg.chat_template:
        t = Path(cfg.chat_template).expanduser()
        if not t.is_file():
            raise LongLensError(f"chat_template {t}: no such file")
        tok.chat_template = t.read_text(encoding="utf-8")
    if not tok.chat_template:
        raise LongLensError(f"model_path {path}: the tokenizer has no chat template; "
                            "give chat_template (a .jinja file)")
    return model, tok


def sft_args(cfg, epochs: float):
    """TRL's SFTConfig from a recipe's `cfg.trl`: our collator's batches as they are (no preparation, no
    truncation); `epochs` unless ``trl.num_train_epochs`` is set."""
    fixed = {"num_train_epochs": epochs, "activation_checkpointing_kwargs": {"use_reentrant": False},
             "dataset_kwargs": {"skip_prepare_dataset": True}, "remove_unused_columns": False, "max_length": None}
    return trl_args(cfg, "SFTConfig", fixed, "SFT")


def train(cfg, model, processing_class, dataset, collator, *, epochs: float, epoch_target=None,
          skipped: Counter | None = None) -> dict:
    """Run TRL's SFTTrainer; batches may carry ``skipped`` (reasons, counted here). Saves model and
    `processing_class` to `cfg.output_dir`. Returns steps, last loss and skips by reason."""
    _imports()
    from transformers import TrainerCallback
    from trl import SFTTrainer

    skipped = Counter() if skipped is None else skipped

    class Trainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            skipped.update(inputs.pop("skipped", None) or ())
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    class Epochs(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kw):
            if epoch_target is not None:
                epoch_target.epoch = round(state.epoch or 0)

    trainer = Trainer(model=model, args=sft_args(cfg, epochs), data_collator=collator, train_dataset=dataset,
                      processing_class=processing_class, callbacks=[Epochs()])
    trainer.train()
    trainer.save_model(cfg.output_dir)
    processing_class.save_pretrained(cfg.output_dir)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    if skipped:
        log.warning("skipped samples: %s", dict(skipped))
    return {"steps": trainer.state.global_step, "last_loss": losses[-1] if losses else None,
            "skipped": dict(skipped), "output_dir": str(cfg.output_dir)}

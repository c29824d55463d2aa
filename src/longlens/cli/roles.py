"""Options for the navigate agent's three roles (reasoning, caption, video_qa), each its own backend.

Per role: ``--ROLE-url URL [--ROLE-model NAME]`` (an OpenAI-compatible server), ``--ROLE-script FILE``
(scripted replies), ``--ROLE-model-path DIR`` (a local transformers model: Qwen-VL for the vision roles, any
causal LM with a chat template for reasoning, e.g. one `longlens train sft-navigate` wrote) or, for the two
vision roles, ``--ROLE-offline`` (the embedded offline backend). One URL may serve several
roles; without its own options, video_qa uses the caption role's backend (one VL model for both, as
the reference serves them).
"""

from __future__ import annotations

import argparse

from longlens.backends.base import Backend, GenConfig
from longlens.backends.registry import make_backend
from longlens.errors import LongLensError

ROLES = ("reasoning", "caption", "videoqa")
HELP = {"reasoning": "the text reasoning model", "caption": "the caption model (VL)",
        "videoqa": "the video_qa model (VL; default: the caption model)"}


def add_role_options(p: argparse.ArgumentParser, roles=ROLES) -> None:
    for role in roles:
        g = p.add_argument_group(f"{role} role: {HELP[role]}")
        g.add_argument(f"--{role}-url", metavar="URL", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
        g.add_argument(f"--{role}-model", metavar="NAME",
                       help="model name on that server (default: the only one served)"
                       + ("; also names the stored captions" if role == "caption" else ""))
        g.add_argument(f"--{role}-model-path", metavar="DIR",
                       help="a local transformers " + ("causal LM folder" if role == "reasoning" else "Qwen-VL folder")
                       + " instead")
        g.add_argument(f"--{role}-script", metavar="FILE", help="scripted replies (JSON list), for dry runs and tests")
        if role != "reasoning":
            g.add_argument(f"--{role}-offline", action="store_true",
                           help="the embedded offline backend (on-screen text, vivid objects, colours; no weights)")
            g.add_argument(f"--{role}-max-new-tokens", type=int, metavar="N",
                           help="tokens per " + ("caption (default: the profile's, 2048 offline / 1024 online)"
                                                 if role == "caption" else "video_qa answer (default 1024)"))


def role_backend(args: argparse.Namespace, role: str, *, timeout_s: float = 600.0,
                 sends_video: bool = False) -> Backend | None:
    """The backend of `role` from its options, or None if none was given. The token-count probe (`--probe`)
    runs only for a role that sends videos (`data captions`); the navigate roles send frames as images."""
    url = getattr(args, f"{role}_url", None)
    path = getattr(args, f"{role}_model_path", None)
    script = getattr(args, f"{role}_script", None)
    offline = getattr(args, f"{role}_offline", False)
    given = [x for x in (url, path, script, offline) if x]
    if len(given) > 1:
        raise LongLensError(f"give one of --{role}-url, --{role}-model-path, --{role}-script, --{role}-offline")
    if offline:
        backend = make_backend("offline")
        backend.check()
        return backend
    if url:
        from longlens.cli.backend_options import openai_options

        transport = {**openai_options(args), "timeout_s": timeout_s}
        if not sends_video:
            transport["probe"] = "off"  # a text model, or frames sent as images: no video to count
        backend = make_backend("openai", base_url=url, model=getattr(args, f"{role}_model", None), **transport,
                               flags=(f"--{role}-url", f"--{role}-model"))
        backend.check()
        return backend
    if path and role == "reasoning":
        from longlens.backends.hf.text import HFTextBackend

        return HFTextBackend(path)
    if path:
        return make_backend("hf", model_path=path, path_flag=f"--{role}-model-path")
    if script:
        return make_backend("scripted", script=script, model=getattr(args, f"{role}_model", None) or f"{role}-script")
    return None


def role_backends(args: argparse.Namespace, *, timeout_s: float = 600.0) -> dict[str, Backend | None]:
    out = {role: role_backend(args, role, timeout_s=timeout_s) for role in ROLES}
    if out["videoqa"] is None:
        out["videoqa"] = out["caption"]
    return out


def add_navigate_options(p: argparse.ArgumentParser) -> None:
    """The navigate agent's options and its roles' (`longlens ask` and `longlens eval` share them)."""
    nav = p.add_argument_group("navigate agent")
    nav.add_argument("--max-rounds", type=int, default=30, help="reasoning calls at most (default 30)")
    nav.add_argument("--on-invalid", choices=["feedback", "retry"], default="feedback",
                     help="an invalid turn is explained to the model (default) or re-asked (at most twice)")
    nav.add_argument("--require-think", action="store_true", help="send the 'think first' message when <think> "
                                                                   "is missing (the reference evaluation)")
    nav.add_argument("--videoqa-rule", choices=["allow", "refuse"], default="allow",
                     help="video_qa on a leaf whose caption was not read: allowed (reference) or refused")
    nav.add_argument("--online-captions", action="store_true",
                     help="the reference CLI's caption settings (64/32/16 frames, 300 words) instead of its "
                          "offline ones (128/64/32, 400)")
    nav.add_argument("--width", type=int, help="tree width (default: round((D/16)^(1/3)) in [4, 8])")
    nav.add_argument("--min-width", type=int, help="lowest width of the cube-root rule (MLVU: 3)")
    add_role_options(p)


def navigate_agent(args: argparse.Namespace, cache):
    """The navigate agent the options of `add_navigate_options` describe (needs ``timeout``,
    ``max_new_tokens`` and ``caption_model`` on `args` too)."""
    from longlens.agents.navigate import NavigateAgent, NavigateConfig
    from longlens.agents.navigate.captions import CaptionSettings

    roles = role_backends(args, timeout_s=args.timeout)
    if roles["reasoning"] is None:
        raise LongLensError("the navigate agent needs a reasoning model: --reasoning-url URL, "
                            "--reasoning-model-path DIR (or --reasoning-script FILE)")
    if roles["caption"] is None and not args.caption_model:
        raise LongLensError("the navigate agent needs captions: --caption-url URL for a caption model, or "
                            "--caption-model NAME to read a tree built or imported earlier")
    captions = CaptionSettings(online=args.online_captions, width=args.width, min_width=args.min_width,
                               max_tokens=args.caption_max_new_tokens)
    config = NavigateConfig(max_rounds=args.max_rounds, on_invalid=args.on_invalid, require_think=args.require_think,
                            videoqa_needs_caption=args.videoqa_rule, captions=captions,
                            gen=GenConfig(max_new_tokens=args.max_new_tokens),
                            videoqa_gen=GenConfig(max_new_tokens=args.videoqa_max_new_tokens or 1024))
    return NavigateAgent(roles["reasoning"], caption=roles["caption"], videoqa=roles["videoqa"], config=config,
                         cache=cache, caption_model=args.caption_model), roles

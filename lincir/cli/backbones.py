"""`lincir backbones`: the named presets, and which text family and encoder path any open_clip architecture gets.

    lincir backbones                      # the presets, with their families
    lincir backbones ViT-B-16-SigLIP      # one architecture (or preset, or ARCH:TAG): family, path, tokenizer
    lincir backbones --all                # every open_clip architecture, one line each

Read from open_clip's model configs, nothing is built; `lincir train` classifies the built tower again.
"""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("backbones", help="list backbone presets; tell an architecture's text family and path",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", metavar="ARCH[:TAG]", help="a preset or an open_clip architecture")
    p.add_argument("--all", action="store_true", help="every open_clip architecture, one line each")
    p.set_defaults(func=run)


def run(args) -> int:
    from lincir.models.backbones import BACKBONES, arch_config, family_of, resolve_spec

    if args.name:
        spec = resolve_spec(args.name)
        f = family_of(args.name)
        text = arch_config(spec.arch).get("text_cfg", {})
        print(f"{args.name}: open_clip {spec.arch}" + (f", pretrained tag {spec.pretrained}" if spec.pretrained else ""))
        if f.refused:
            print(f"  refused    {f.refused}")
            return 0
        print(f"  family     {f.name} ({'causal' if f.causal else 'bidirectional'}, pooled {f.pool}, "
              f"{f.context_length}-token context)")
        print(f"  path       {f.path()}")
        tok = text.get("hf_tokenizer_name")
        if text.get("hf_model_name"):
            tok_line = (f"Hugging Face {tok}, required (with `transformers`, pip install 'lincir[hf]', and the "
                        f"model's config and tokenizer files, online once or in the HF cache)")
        elif tok:
            tok_line = f"Hugging Face {tok} (offline with --weights random: a stand-in word tokenizer)"
        else:
            tok_line = "open_clip's CLIP BPE"
        print(f"  tokenizer  {tok_line}")
        return 0
    if args.all:
        import open_clip

        from lincir.models.backbones import register_model_configs

        register_model_configs()
        for arch in sorted(open_clip.list_models()):
            f = family_of(arch)
            print(f"{arch:40s} {f.name:14s} {f.path()}")
        return 0
    print("presets (any open_clip architecture also works as ARCH[:TAG]; `lincir backbones --all`):")
    for name, spec in BACKBONES.items():
        f = family_of(name)
        weights = f"lincir/assets/{spec.asset}" if spec.asset else f"{spec.arch}:{spec.pretrained}"
        print(f"  {name:20s} {f.name:12s} {weights:32s} {spec.description}")
    return 0

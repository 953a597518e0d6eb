"""``vtg export``: a checkpoint as a Hugging Face model folder (merged, or adapter + processor)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    @cli.command("export")
    @click.option("--checkpoint", required=True, type=click.Path(file_okay=False),
                  help="The vtg checkpoint folder (e.g. <run>/checkpoints/final).")
    @click.option("--output-dir", required=True, type=click.Path(file_okay=False), help="Folder to create.")
    @click.option("--merge-lora", is_flag=True,
                  help="Merge the LoRA adapter into the base: a plain transformers model folder.")
    @click.option("--base-model", default=None,
                  help="Record this base model (Hub id) instead of the path used in training.")
    @click.option("--overwrite", is_flag=True, help="Replace --output-dir if it exists.")
    @click.option("--push-to-hub", "push_to_hub", default=None, metavar="REPO",
                  help="Upload the export to this Hub repo (needs huggingface_hub and a login). Off by default.")
    @click.option("--public", is_flag=True, help="With --push-to-hub: create the repo public (default private).")
    def export(checkpoint: str, output_dir: str, merge_lora: bool, base_model: str | None, overwrite: bool,
               push_to_hub: str | None, public: bool) -> None:
        """Export CHECKPOINT as a folder transformers (or peft) loads, with a model card.

        \b
        vtg export --checkpoint runs/.../checkpoints/final --output-dir exports/vtg-model --merge-lora
        vtg export --checkpoint CKPT --output-dir exports/adapter --base-model Qwen/Qwen3-VL-4B-Instruct
        """
        from ..export.hf import export_checkpoint

        out = export_checkpoint(checkpoint, output_dir, merge_lora=merge_lora, base_model=base_model,
                                overwrite=overwrite, push_to_hub=push_to_hub, private=not public)
        click.echo(f"exported to {out}" + (" (LoRA merged)" if merge_lora else ""))
        if push_to_hub:
            click.echo(f"pushed to https://huggingface.co/{push_to_hub}")

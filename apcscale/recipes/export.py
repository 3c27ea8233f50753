"""Export a trained run's encoder as a self-contained directory (loads with torch and apcscale only).

    python -m apcscale.recipes.export RUN_DIR OUT                 # apcscale export RUN_DIR OUT
    python -m apcscale.recipes.export sweeps/default/runs/lstm-w64-d2-d7-s0 encoders/lstm-w64 --checkpoint best

RUN_DIR: a training run's directory (`apcscale train`) or one of a sweep's runs (SWEEP/runs/RUN_ID).
OUT gets config.json (model, feature settings, normalisation statistics, N, provenance) and the
weights (encoder.safetensors when the safetensors package is installed, else encoder.pt, a plain
torch state_dict). Load it with `apcscale.models.export.load_encoder(OUT)`; see docs/encoders.md.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from apcscale.utils.log import cli_logging

    cli_logging()
    parser = argparse.ArgumentParser(
        prog="python -m apcscale.recipes.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", help="a run directory (with checkpoints/best.ckpt and recipe.yaml)")
    parser.add_argument("out", help="the export directory to write")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="best.ckpt (lowest dev loss, the default) or last.ckpt",
    )
    parser.add_argument(
        "--weights",
        choices=("auto", "safetensors", "pt"),
        default="auto",
        help="weights file format (auto: safetensors if installed, else a torch state_dict)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing export in OUT")
    args = parser.parse_args(argv)

    from apcscale.models.export import ExportError, export_run

    try:
        path = export_run(
            args.run_dir, args.out, checkpoint=args.checkpoint, overwrite=args.overwrite, weights_format=args.weights
        )
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = json.loads(path.read_text())
    prov = config["provenance"]
    loss = prov.get("checkpoint_dev_loss")
    print(
        f"exported {prov['run_id']} ({config['label']}, N = {config['N']:,}, {config['feature_dim']} log-Mel bins at "
        f"{config['features']['sample_rate']} Hz) from {prov['checkpoint']}"
        + (f" (dev loss {loss:.4f})" if loss is not None else "")
        + f" to {path.parent}: {config['weights']['file']}, {path.name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m tfvidgen.export --workdir=W [--export_base=export/<model>] [--version=N]`.

Writes a TF Serving-ready SavedModel of the workdir's latest checkpoint (the EMA generator when
training kept one) to <export_base>/<version>/, with the training config, step, declared inputs,
serving limits and the model's capabilities in assets.extra/tfvidgen.json (tfvidgen.export_lib
has the details). An existing version is never overwritten. Errors are one `export: error:` line,
exit 2.
"""

from __future__ import annotations

import json
import os

from absl import flags

from tfvidgen import cli, errors
# The writing lives in export_lib; its names stay reachable here for existing callers.
from tfvidgen.export_lib import ASSET_FILE, describe_signatures, export_model, next_version

__all__ = ["export_model", "next_version", "describe_signatures", "ASSET_FILE"]


def define_flags() -> None:
    """Defines this entry point's flags (only when run as a program)."""
    cli.define_source_flags(exports=False)
    flags.DEFINE_string("export_base", None, "TF Serving base path; default export/<model>.")
    flags.DEFINE_integer("version", None, "Version number; default: next integer.", lower_bound=1)


@errors.main_guard("export")
def main(argv):
    del argv
    args = cli.flag_values()
    from tfvidgen import sources
    source = sources.source_from(args.workdir, exports=False)
    model, config, step = sources.load(source)
    with open(os.path.join(source.workdir, "config.json")) as f:
        metadata = {"config": json.load(f), "step": step,
                    "workdir": os.path.abspath(source.workdir)}
    base = args.export_base or os.path.join("export", config.model)
    errors.check_output_dir("--export_base", base)
    path = export_model(model, metadata, base, args.version)
    print(f"exported {config.model} (step {step}) to {path}\nsignatures:\n"
          f"{describe_signatures(path)}")
    return 0


if __name__ == "__main__":
    define_flags()
    errors.run_app(main, "export")

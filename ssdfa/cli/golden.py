"""``ssdfa golden``: generate a layer's golden-vector set (docs/golden.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._argtypes import positive_int, seed_int

from ssdfa.errors import SsdfaError

HELP = "generate a golden-vector set for one layer"

DESCRIPTION = """\
Train one layer of CONFIG.toml on N drawn samples with the bit-exact model and write everything
the hardware layer must reproduce to DIR (manifest.json and vectors.npz). The same arguments
always give byte-identical files."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("golden", help=HELP, description=DESCRIPTION)
    parser.add_argument("--config", required=True, type=Path, metavar="CONFIG.toml",
                        help="layer configuration (see model/layer_config.py)")
    parser.add_argument("--samples", required=True, type=positive_int, metavar="N", help="training samples, N >= 1")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to write the set to")
    parser.add_argument("--seed", type=seed_int, metavar="K",
                        help="network seed, replacing the configuration's [modes] seed; it seeds the LFSRs "
                             "and the test data")
    parser.add_argument("--full-weights", action="store_true",
                        help="store the whole weight array after every sample, not only its checksum")
    parser.add_argument("--force", action="store_true",
                        help="replace the set in a non-empty DIR (other files there, such as config.toml, are kept)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that `ssdfa --help` does not load NumPy.
    from ssdfa.golden.format import VECTORS_NAME, write_golden_set
    from ssdfa.golden.layer_vectors import generate_layer_set, with_seed
    from ssdfa.model.layer_config import load_layer_config
    from ssdfa.model.memory_budget import golden_set_bytes, require_memory
    from ssdfa.user_files import output_directory

    config = load_layer_config(args.config)
    output_directory(args.out, "--out", create=False)
    shape = config.shape
    require_memory(
        golden_set_bytes(shape.fan_in, shape.neurons, config.outputs, args.samples, full_weights=args.full_weights),
        f"--samples {args.samples}{' with --full-weights' if args.full_weights else ''} "
        f"(a layer of {shape.neurons} neurons x {shape.fan_in} inputs)",
    )
    if args.seed is not None:
        config = with_seed(config, args.seed)
    try:
        golden = generate_layer_set(config, args.samples, full_weights=args.full_weights)
    except ValueError as exc:
        raise SsdfaError(f"{args.config}: {exc}") from None
    directory = write_golden_set(args.out, golden, force=args.force)
    size = (directory / VECTORS_NAME).stat().st_size
    print(
        f"wrote {args.out}: {config.activation.value} layer, {shape.neurons} neurons x {shape.fan_in} inputs, "
        f"{args.samples} samples, {size} bytes of vectors"
    )
    return 0

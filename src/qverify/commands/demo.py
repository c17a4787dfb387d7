"""`qverify demo`: the demo model and data as plain files."""

from __future__ import annotations

from qverify.commands import checks
from qverify.commands.common import EXIT_OK, positive


def run(args) -> int:
    out = checks.output_dir("--out", args.out)
    from qverify import demo  # after the check: writing the model loads keras

    demo.write_demo(out, args.samples, args.split)
    print(f"wrote {out}/model.keras, input.npy, target.npy ({args.samples} samples, split '{args.split}')")
    print(demo.DESCRIPTION)
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="write the demo model and data as plain files")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--samples", type=positive, default=1000, help="number of samples (default 1000)")
    p.add_argument("--split", choices=("train", "calib", "test"), default="test", help="which synthetic split")
    p.set_defaults(func=run)

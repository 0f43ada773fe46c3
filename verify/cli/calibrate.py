"""``python -m verify.calibrate ID [--seeds A-B]``: measure an empirical claim's band on its calibration seeds.

Runs the claim's registered statistic on each calibration seed (disjoint from the checked seeds 0-9), applies its
stated rule and stores seeds, rule, per-seed statistics and band in ``verify/claims/calibration.json``.
"""
from __future__ import annotations

import json
import sys

import torch

from .args import BadArgument, Parser, seed_list
from verify.claims import CALIBRATIONS, Context, load_all
from verify.claims.registry import CALIBRATION_FILE
from verify.files import jsonable, write_atomic


def main(argv=None) -> int:
    p = Parser(prog="python -m verify.calibrate", description=__doc__)
    p.add_argument("ids", nargs="*", help="empirical claim ids (default: every registered calibration)")
    p.add_argument("--seeds", type=seed_list, default=None, help="override the registered calibration seeds")
    try:
        args = p.parse_args(argv)
        load_all()
        unknown = [i for i in args.ids if i not in CALIBRATIONS]
        if unknown:
            raise BadArgument(f"no calibration registered for {', '.join(unknown)} (have: {', '.join(CALIBRATIONS)})")
        if args.seeds and set(args.seeds) & set(range(10)):
            raise BadArgument("argument --seeds: calibration seeds must be disjoint from the checked seeds 0-9")
    except BadArgument as exc:
        print(f"python -m verify.calibrate: error: {exc}", file=sys.stderr)
        return 2
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    data = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.exists() else {}
    for cid in args.ids or list(CALIBRATIONS):
        cal = CALIBRATIONS[cid]
        seeds = args.seeds or list(cal.seeds)
        per_seed = []
        for s in seeds:
            per_seed.append(jsonable(cal.statistic(Context(seed=s))))
            print(f"{cid} seed {s}: {json.dumps({k: v for k, v in per_seed[-1].items() if not isinstance(v, (dict, list))})}",
                  flush=True)
        band = jsonable(cal.band(per_seed))
        scalars = [{k: v for k, v in st.items() if not isinstance(v, (dict, list))} for st in per_seed]
        data[cid] = dict(band, seeds=[min(seeds), max(seeds)], rule=cal.rule, per_seed=scalars)
        print(f"{cid}: {json.dumps(band)}")
        write_atomic(CALIBRATION_FILE, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The batch example's agent: does its little piece of work, one line of output, and exits 0.

It prints `<message> from <agent id> (version N)` and exits. When `MN_BATCH_OUT` names a directory (the end-to-end
test deploys a copy of the manifests that declares it in `config.env`), it first appends its pid and that line to
`$MN_BATCH_OUT/<instance id>.log`, so whoever watches can count how often each instance was started; and while a
file `$MN_BATCH_OUT/hold-<version>` exists it waits before finishing, so a test can keep a run going as long as
it needs. The two example versions share this file; their manifests differ only in the `--message` argument of
`config.command`.
"""

import argparse
import os
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--message", default="hello")
ARGS = parser.parse_args()


def main() -> None:
    version = os.environ.get("MN_DEPLOYMENT_VERSION", "?")
    line = f"{ARGS.message} from {os.environ.get('MN_AGENT_ID', '?')} (version {version})"
    out = os.environ.get("MN_BATCH_OUT")
    if out:
        with open(Path(out) / f"{os.environ.get('MN_INSTANCE_ID', 'agent')}.log", "a") as log:
            log.write(f"{os.getpid()} {line}\n")
        hold = Path(out) / f"hold-{version}"
        while hold.exists():
            time.sleep(0.05)
    print(line, flush=True)


if __name__ == "__main__":
    main()

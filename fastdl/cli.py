"""The ``fastdl`` command line."""
import argparse
import platform
import sys


def _cmd_info(args):
    import numpy as np

    import fastdl
    print(f"fastdl {fastdl.__version__} on Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"current backend: {fastdl.current_backend()}")
    for name in fastdl.backend.BACKENDS:
        try:
            fastdl.backend.ops(name)
            status = "available"
        except fastdl.BackendError as exc:
            status = str(exc).split("; available")[0]
        print(f"  {name:6s} {status}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastdl",
        description="fastdl: the book 'Deep Learning from Scratch' on fast, switchable kernels.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("info", help="show the version and which backends are available here")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

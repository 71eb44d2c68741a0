#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    if sys.argv[1:2] == ["serve"]:
        # Listen before Django loads: chargers reconnecting after a restart wait in the accept
        # queue instead of being refused into their back-off (backoffice/listen.py).
        from backoffice.listen import listen_early

        listen_early(sys.argv[2:])
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

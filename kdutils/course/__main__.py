"""``python -m kdutils.course <subcommand>``: see ``kdutils.course.cli``."""

from .cli import main

raise SystemExit(main())

"""`python -m memcloud.cli` (how tests, memcloud.testing and the supervisor run it)."""

from memcloud.cli import main

raise SystemExit(main())

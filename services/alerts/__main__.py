import sys

if sys.argv[1:2] == ["test-rules"]:
    from services.alerts.cli import main as test_rules

    sys.exit(test_rules(sys.argv[2:]))

from services.alerts.main import main

sys.exit(main())

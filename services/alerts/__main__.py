"""``python -m services.alerts`` (the service) or ``python -m services.alerts test-rules``."""

import sys


def main() -> int:
    if sys.argv[1:2] == ["test-rules"]:
        from services.alerts.cli import main as test_rules

        return test_rules(sys.argv[2:])
    from services.alerts.main import main as serve_alerts

    return serve_alerts()


if __name__ == "__main__":
    sys.exit(main())

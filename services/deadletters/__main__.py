from services.deadletters.cli import main

raise SystemExit(main())

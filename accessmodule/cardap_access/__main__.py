from cardap_access.cli import main

raise SystemExit(main())

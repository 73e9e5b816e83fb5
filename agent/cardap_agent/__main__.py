from cardap_agent.cli import main

raise SystemExit(main())

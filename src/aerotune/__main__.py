from aerotune.cli import main

raise SystemExit(main())

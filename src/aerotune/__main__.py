from aerotune.commands import main

raise SystemExit(main())

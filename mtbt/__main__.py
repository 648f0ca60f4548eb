from mtbt.cli import main

raise SystemExit(main())

from chargeledger.cli import main

raise SystemExit(main())

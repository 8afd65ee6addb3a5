from heygem_client.cli import main

raise SystemExit(main())

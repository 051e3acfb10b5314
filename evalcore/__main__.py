from evalcore.cli.app import main

main()

from collectors.cli import main

main()

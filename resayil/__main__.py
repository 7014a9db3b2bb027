from resayil.cli import main

main()

from bnb_provision.cli import main

main()

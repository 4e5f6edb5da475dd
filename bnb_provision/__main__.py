from bnb_provision._early import main

main()

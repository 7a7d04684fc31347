from fmap.cli import main

main()

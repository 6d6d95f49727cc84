from jaxae.cli import main

main()

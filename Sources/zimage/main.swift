import ZImageCLI
ZImageCommand.main()

from platform_app.sandbox.cli import main

main()

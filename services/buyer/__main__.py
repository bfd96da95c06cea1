from services.buyer.main import main

main()

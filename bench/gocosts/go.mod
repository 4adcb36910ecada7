module gocosts

go 1.27

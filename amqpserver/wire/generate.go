package wire

//go:generate go run gen/main.go

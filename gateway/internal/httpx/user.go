package httpx

// UserKey is the echo context key under which authentication leaves the
// request's *mapping.UserInfo.
const UserKey = "warren.user"

// Package clients embeds the browser JavaScript client and the example
// pages so that the gateway can serve them at /examples/.
package clients

import "embed"

// Files holds js/ (warren.js, warren.d.ts) and examples/browser/.
//
//go:embed js/warren.js js/warren.d.ts examples/browser
var Files embed.FS

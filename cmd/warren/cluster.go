package main

import (
	"crypto/tls"
	"fmt"

	"github.com/warrenmq/warren/mapping"
)

// clustered: any of the cluster settings turns cluster mode on.
func (c *Config) clustered() bool {
	return c.NodeName != "" || c.ClusterAddr != "" || c.ClusterPeers != ""
}

// checkCluster checks the cluster settings together (finishConfig).
func checkCluster(cfg *Config) error {
	if !cfg.clustered() {
		if cfg.ClusterSecret != "" || cfg.ClusterAdvertise != "" || cfg.ClusterQueueNodes != "" || cfg.ClusterTLSCert != "" || cfg.ClusterTLSKey != "" || cfg.ClusterTLSCA != "" {
			return fmt.Errorf("--cluster-secret, --cluster-advertise, --cluster-queue-nodes and --cluster-tls-* need --node-name, --cluster-addr and --cluster-peers")
		}
		return nil
	}
	if cfg.NodeName == "" || cfg.ClusterAddr == "" || cfg.ClusterPeers == "" || cfg.ClusterSecret == "" {
		return fmt.Errorf("a cluster node needs --node-name, --cluster-addr, --cluster-peers and --cluster-secret (warren.cluster.node_name, .addr, .peers, .secret)")
	}
	if cfg.ClusterFormTimeout < 0 {
		return fmt.Errorf("--cluster-form-timeout %s: want a positive duration", cfg.ClusterFormTimeout)
	}
	tlsSet := 0
	for _, f := range []string{cfg.ClusterTLSCert, cfg.ClusterTLSKey, cfg.ClusterTLSCA} {
		if f != "" {
			tlsSet++
		}
	}
	if tlsSet != 0 && tlsSet != 3 {
		return fmt.Errorf("--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together (routes verify certificates in both directions)")
	}
	_, err := clusterConfig(*cfg)
	return err
}

// placementConfig is where new queues are homed in a cluster (the core
// checks it; a single node homes every queue itself).
func placementConfig(cfg Config) mapping.PlacementConfig {
	return mapping.PlacementConfig{Locator: cfg.QueueLeaderLocator, Nodes: splitList(cfg.ClusterQueueNodes)}
}

// clusterConfig is the core's cluster configuration; nil when the node
// runs alone. It checks the addresses and the node name and reads the
// route certificates.
func clusterConfig(cfg Config) (*mapping.ClusterConfig, error) {
	if !cfg.clustered() {
		return nil, nil
	}
	c := &mapping.ClusterConfig{
		NodeName:    cfg.NodeName,
		Listen:      cfg.ClusterAddr,
		Advertise:   cfg.ClusterAdvertise,
		Peers:       splitList(cfg.ClusterPeers),
		Secret:      cfg.ClusterSecret,
		FormTimeout: cfg.ClusterFormTimeout,
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if cfg.ClusterTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ClusterTLSCert, cfg.ClusterTLSKey)
		if err != nil {
			return nil, fmt.Errorf("cluster TLS: %w", err)
		}
		pool, err := loadCAPool(cfg.ClusterTLSCA)
		if err != nil {
			return nil, fmt.Errorf("cluster TLS: %w", err)
		}
		c.TLS = &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      pool,
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		}
	}
	return c, nil
}

package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/nats-io/nats.go/jetstream"
)

// placedJS is the JetStream API of a cluster node: every stream the
// store creates or updates through it is placed on this node (R1, server
// tag nodeTagPrefix+name), stream listings show only this node's logs,
// and creating or deleting a stream fails at once while the meta group
// has no leader (it would otherwise wait out the API timeout). The group
// syncer fsyncs this node's block files, which is right only for the
// records written here: replicated logs (replicated.go) are neither
// placed nor group-synced. The shared metadata buckets are made with the
// plain API (kvwatch.go).
type placedJS struct {
	jetstream.JetStream
	ns        *server.Server
	placement *jetstream.Placement
	logPrefix string // stream names of this node's logs start with streamPrefix+logPrefix
}

func newPlacedJS(js jetstream.JetStream, ns *server.Server, c *ClusterConfig) *placedJS {
	return &placedJS{
		JetStream: js,
		ns:        ns,
		placement: &jetstream.Placement{Cluster: c.Name, Tags: []string{nodeTagPrefix + strings.ToLower(c.NodeName)}},
		logPrefix: logPrefix(c),
	}
}

// ErrNoQuorum is returned for stream administration while the cluster's
// JetStream meta group has no leader.
var ErrNoQuorum = errors.New("jsstore: the cluster has no JetStream meta leader (fewer than a quorum of its nodes are running): durable queues cannot be created or deleted until a quorum is back")

// ownLog refuses a log stream without this node's prefix: another node
// may create the same name, and the two would share one stream (or the
// second create would move the first node's stream to it).
func (p *placedJS) ownLog(name string) error {
	if replicatedStream(name) {
		return nil
	}
	if strings.HasPrefix(name, streamPrefix) && !strings.HasPrefix(name, streamPrefix+p.logPrefix) {
		return fmt.Errorf("jsstore: log %q does not start with this cluster node's prefix %q (Store.LogPrefix)", strings.TrimPrefix(name, streamPrefix), p.logPrefix)
	}
	return nil
}

func (p *placedJS) needMeta() error {
	if jsz, err := p.ns.Jsz(nil); err == nil && jsz.Meta != nil && jsz.Meta.Leader != "" {
		return nil
	}
	return ErrNoQuorum
}

// replicatedStream: a replicated log's stream is shared by the cluster,
// spread over several nodes, so it gets no placement tag (replicated.go).
func replicatedStream(name string) bool {
	return strings.HasPrefix(name, streamPrefix+ReplicatedPrefix)
}

// placementFor is the placement of a stream this node creates.
func (p *placedJS) placementFor(name string) *jetstream.Placement {
	if replicatedStream(name) {
		return nil
	}
	return p.placement
}

// check is what creating or updating a stream needs.
func (p *placedJS) check(name string) error {
	if err := p.ownLog(name); err != nil {
		return err
	}
	return p.needMeta()
}

func (p *placedJS) DeleteStream(ctx context.Context, name string) error {
	if err := p.needMeta(); err != nil {
		return err
	}
	return p.JetStream.DeleteStream(ctx, name)
}

func (p *placedJS) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if err := p.check(cfg.Name); err != nil {
		return nil, err
	}
	cfg.Placement = p.placementFor(cfg.Name)
	return p.JetStream.CreateStream(ctx, cfg)
}

func (p *placedJS) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if err := p.check(cfg.Name); err != nil {
		return nil, err
	}
	cfg.Placement = p.placementFor(cfg.Name)
	return p.JetStream.UpdateStream(ctx, cfg)
}

func (p *placedJS) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if err := p.check(cfg.Name); err != nil {
		return nil, err
	}
	cfg.Placement = p.placementFor(cfg.Name)
	return p.JetStream.CreateOrUpdateStream(ctx, cfg)
}

func (p *placedJS) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Placement = p.placement
	return p.JetStream.CreateKeyValue(ctx, cfg)
}

func (p *placedJS) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Placement = p.placement
	return p.JetStream.UpdateKeyValue(ctx, cfg)
}

func (p *placedJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Placement = p.placement
	return p.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
}

// StreamNames lists only this node's logs (and streams that are not
// logs): the store deletes logs it has no queue for, and must never see
// another node's, nor a replicated log (whose queue record may live on
// another node, and which every node shares).
func (p *placedJS) StreamNames(ctx context.Context, opts ...jetstream.StreamListOpt) jetstream.StreamNameLister {
	return newOwnNames(p.JetStream.StreamNames(ctx, opts...), streamPrefix+p.logPrefix)
}

// ownNames filters a StreamNameLister. Its goroutine ends when the inner
// lister's channel closes (the inner lister ends it on its context).
type ownNames struct {
	inner jetstream.StreamNameLister
	out   chan string
}

func newOwnNames(inner jetstream.StreamNameLister, own string) *ownNames {
	o := &ownNames{inner: inner, out: make(chan string)}
	go func() {
		defer close(o.out)
		for n := range inner.Name() {
			if !strings.HasPrefix(n, streamPrefix) || strings.HasPrefix(n, own) {
				o.out <- n
			}
		}
	}()
	return o
}

func (o *ownNames) Name() <-chan string { return o.out }

// Err is the inner lister's error; valid once Name's channel is closed.
func (o *ownNames) Err() error { return o.inner.Err() }

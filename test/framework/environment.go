package framework

import (
	"context"
	"fmt"
	"slices"
)

// FastLeaseArgs are signet flags for a short leader lease, so that a
// restarted or replaced signet takes the controller over in seconds.
var FastLeaseArgs = []string{
	"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms",
	"--leader-elect-resource-namespace=" + SignetNamespace,
}

// TestArgs are the signet flags tests run with: FastLeaseArgs, and a short
// --waiting-approval-event-delay so that a test sees WaitingApproval soon.
var TestArgs = append(slices.Clone(FastLeaseArgs), "--waiting-approval-event-delay=1s")

// StartEnvironment is what a test package's TestMain needs: a control plane,
// the Issuer CRDs, and a signet registered with the aggregator and ready,
// running with TestArgs plus signetOpts.ExtraArgs. On error nothing is
// left running; otherwise cp.Stop stops everything.
func StartEnvironment(ctx context.Context, cpOpts ControlPlaneOptions, signetOpts SignetOptions) (*ControlPlane, *Signet, error) {
	cp, err := StartControlPlane(ctx, cpOpts)
	if err != nil {
		return nil, nil, err
	}
	crds, err := IssuerCRDDir()
	if err == nil {
		_, err = cp.InstallCRDs(ctx, crds)
	}
	if err != nil {
		cp.Stop()
		return nil, nil, fmt.Errorf("installing the Issuer CRDs: %w", err)
	}
	signetOpts.ExtraArgs = append(slices.Clone(TestArgs), signetOpts.ExtraArgs...)
	s, err := StartSignet(ctx, cp, signetOpts)
	if err != nil {
		cp.Stop()
		return nil, nil, err
	}
	return cp, s, nil
}

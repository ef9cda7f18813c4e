package cvm

import (
	"context"
	"fmt"

	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	cvmapi "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
)

// describeInstancesStatus calls the SDK and turns a panic inside it into a
// ClientError.ParseJsonError, which is retried like any unparsable body. The
// SDK (common v1.3.211, http.TryReadErr) dereferences nil when a response
// body is the JSON `null`, with any HTTP status: a broken gateway must not
// crash the daemon. Found by FuzzScanResponse (testdata/fuzz seed
// d8e25eac66d89aa3).
func describeInstancesStatus(ctx context.Context, c *cvmapi.Client, req *cvmapi.DescribeInstancesStatusRequest) (*cvmapi.DescribeInstancesStatusResponse, error) {
	return sdkGuard(func() (*cvmapi.DescribeInstancesStatusResponse, error) {
		return c.DescribeInstancesStatusWithContext(ctx, req)
	})
}

// describeInstances is describeInstancesStatus for DescribeInstances.
func describeInstances(ctx context.Context, c *cvmapi.Client, req *cvmapi.DescribeInstancesRequest) (*cvmapi.DescribeInstancesResponse, error) {
	return sdkGuard(func() (*cvmapi.DescribeInstancesResponse, error) {
		return c.DescribeInstancesWithContext(ctx, req)
	})
}

// sdkGuard runs one SDK call and turns a panic inside it into a
// ClientError.ParseJsonError (see describeInstancesStatus).
func sdkGuard[T any](call func() (T, error)) (resp T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			resp, err = zero, tcerr.NewTencentCloudSDKError("ClientError.ParseJsonError",
				fmt.Sprintf("the SDK failed on the response: %v", r), "")
		}
	}()
	return call()
}
